module github.com/sluice-sms/sluice/services/dlr

go 1.26.0

replace (
	github.com/sluice-sms/sluice/pkg => ../../pkg
	github.com/sluice-sms/sluice/schemas => ../../schemas
)
